"""Synthetic Putian population: residents, institutions, visits, clinical content, imaging.

Run it with ``phix synth --seed S --residents N --out DIR`` and push the result with
``phix load DIR --url URL``. Nothing here touches real patient data.
"""
