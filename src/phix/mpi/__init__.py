"""The city-wide master patient index: one resident, one identity, whichever hospital, card or
spelling they arrive with. See ``docs/mpi.md`` for the model, the rules and the API."""
