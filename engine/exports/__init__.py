"""Training-corpus exports of a dataset version: Florence-2 JSONL, COCO, YOLO and Hugging Face Parquet."""
