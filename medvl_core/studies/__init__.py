"""One module per paper id: what its notebook calls (prepare the study, run the arms, build the paper's tables).

This layer sits above `eval`, `viz` and `train`; nothing below imports it.
"""
