"""What a pipeline workdir reports: report.md, results.json, tables.json and
the figures.

  report.py            results.json rows and report.md (our values beside the
                       paper's, the paper's findings checked)
  paper.py             the paper's tables as data
  tables.py            the paper's other tables (tables.json): Tables 1 and 4
                       (corpus_tables.py), 3 and 7 (prediction_tables.py), the
                       words per genre (genre_words.py); sections.py: a table
  figures.py           the paper's figures of a pipeline workdir
  figure_inputs.py     what the figures and tables read from the workdir
"""
