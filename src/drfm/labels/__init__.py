"""Pseudo-labels from features: exact kNN, sparse k-reciprocal Jaccard distance, DBSCAN, CPG."""
