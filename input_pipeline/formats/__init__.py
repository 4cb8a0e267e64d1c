"""Readers of the release files and of a user's catalog, and the splits.

  mumu.py, msdi.py   the MuMu and MSD-I release files (Sec 7.1, 6.1)
  catalog.py         the generic catalog CSV (training and tagging read it)
  splits.py          artist-filtered train/val/test splits
  release_format.py  what every reader shares: errors naming file, line and
                     column; headers; rows
"""
