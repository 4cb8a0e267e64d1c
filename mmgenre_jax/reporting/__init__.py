"""What a pipeline workdir reports: report.md, results.json and the figures.

  report.py         results.json rows and report.md (our values beside the
                    paper's, the paper's findings checked)
  paper.py          the paper's tables as data
  figures.py        the paper's figures of a pipeline workdir
  figure_inputs.py  what the figures read from the workdir
"""
