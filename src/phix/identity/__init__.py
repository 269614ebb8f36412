"""Identity helpers shared by the synthetic generator and the patient index."""
