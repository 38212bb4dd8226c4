"""Adapters for public datasets: read each dataset's own layout into store cases, write predictions back in it.

One module per source (``toothfairy2``, ``teeth3ds``), driven by its card in ``catalogs/sources/``; ``importing``
holds what they share (the cards, publishing into a version next to the cases already there).
"""
