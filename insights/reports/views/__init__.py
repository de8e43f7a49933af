"""The report pages, one module per report; shared.py holds what they all use."""
