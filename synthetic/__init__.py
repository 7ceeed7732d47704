"""Synthetic landing data for `mutuals generate`: a seeded, numpy-vectorised model of a member network.

Why a package of small modules: each piece of realism (the power-law graph, careers at companies and
schools, the served-candidate event funnel, experiments, bad rows, file writing) can be read and changed on
its own, and every random draw comes from a stream named in `seeds`, so changing one piece never shifts the
random numbers of another.
"""
