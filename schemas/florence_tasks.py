"""Florence-2's task vocabulary: which prompt token asks for what, and what it annotates.

The Florence-2 specialist, its output parsing, the refinement targets, re-annotation and the engine's
default task weights all read their tasks from here.
"""

from __future__ import annotations

GROUNDING_TASK = "<CAPTION_TO_PHRASE_GROUNDING>"
REGION_DESCRIPTION_TASK = "<REGION_TO_DESCRIPTION>"
OCR_REGION_TASK = "<OCR_WITH_REGION>"
# Tasks that take an input and are only trained on (the specialist does not run them).
REFERRING_SEGMENTATION_TASK = "<REFERRING_EXPRESSION_SEGMENTATION>"
REGION_SEGMENTATION_TASK = "<REGION_TO_SEGMENTATION>"
REGION_CATEGORY_TASK = "<REGION_TO_CATEGORY>"
OPEN_VOCABULARY_TASK = "<OPEN_VOCABULARY_DETECTION>"
REGION_OCR_TASK = "<REGION_TO_OCR>"

# Caption tasks and the text granularity each writes.
CAPTION_TASKS = {"<CAPTION>": "brief", "<DETAILED_CAPTION>": "detailed", "<MORE_DETAILED_CAPTION>": "more_detailed"}
# Box tasks and the region kind of their boxes.
BOX_TASKS = {"<OD>": "object", "<DENSE_REGION_CAPTION>": "dense_caption", "<REGION_PROPOSAL>": "proposal"}
# Tasks whose prompt carries an input: a caption to ground, a box to describe.
INPUT_TASKS = (GROUNDING_TASK, REGION_DESCRIPTION_TASK)
# Every task the specialist (and a refinement round re-annotating) can run, in the order it runs them.
SUPPORTED_TASKS = (*CAPTION_TASKS, *BOX_TASKS, OCR_REGION_TASK, *INPUT_TASKS)
# Region kinds each task writes: the kinds a refinement round may confirm, contradict or add to.
TASK_REGION_KINDS = {**BOX_TASKS, OCR_REGION_TASK: "ocr_line", REGION_DESCRIPTION_TASK: "region_caption"}

# The specialist's default tasks: all of them.
DEFAULT_TASKS = (
    "<CAPTION>",
    "<DETAILED_CAPTION>",
    "<MORE_DETAILED_CAPTION>",
    "<OD>",
    "<REGION_PROPOSAL>",
    "<DENSE_REGION_CAPTION>",
    OCR_REGION_TASK,
    GROUNDING_TASK,
    REGION_DESCRIPTION_TASK,
)
# Tasks a training target can be written for (``refine/targets.py``): every task of Florence2Processor, each
# from the annotations that teach it.
TRAINING_TASKS = (
    "<CAPTION>",
    "<DETAILED_CAPTION>",
    "<MORE_DETAILED_CAPTION>",
    "<OD>",
    "<REGION_PROPOSAL>",
    "<DENSE_REGION_CAPTION>",
    GROUNDING_TASK,
    REFERRING_SEGMENTATION_TASK,
    "<OCR>",
    OCR_REGION_TASK,
    REGION_SEGMENTATION_TASK,
    REGION_DESCRIPTION_TASK,
    REGION_CATEGORY_TASK,
    OPEN_VOCABULARY_TASK,
    REGION_OCR_TASK,
)
# Tasks refinement trains on by default (``refine.task_weights``), each with weight 1.
REFINE_TASKS = (
    "<CAPTION>",
    "<DETAILED_CAPTION>",
    "<MORE_DETAILED_CAPTION>",
    "<OD>",
    "<DENSE_REGION_CAPTION>",
    OCR_REGION_TASK,
    GROUNDING_TASK,
)
