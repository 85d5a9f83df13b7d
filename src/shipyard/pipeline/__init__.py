"""The pipeline: engine, run context, stages and deployment helpers."""
