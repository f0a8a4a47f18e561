"""Filters: remove wrong, redundant and meaningless annotations, and say why.

- ``base``: the :class:`~filters.base.Filter` base (one decision method; drops recorded, counted, Stage protocol)
- ``spacy_model``, ``blacklist``: the shared spaCy pipeline and lemma-matched phrase/label lists
- ``text_analysis``, ``text_rules``: what a text says (objects, attributes, actions, complexity) and the text filter
- ``region_confidence``, ``region_geometry``, ``region_agreement``, ``nms``, ``blacklist_filter``: region filters
- ``statistics``: the paper's Table 2/3 measures and a side-by-side comparison
"""
