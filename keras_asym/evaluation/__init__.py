"""Scoring drawings and trained runs: image metrics, paired scores, style accuracy, hidden information, FID/KID."""
