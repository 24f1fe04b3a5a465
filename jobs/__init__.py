"""Jobs that run the whole pipeline (training, scoring, targeting) end to end: the demo."""
