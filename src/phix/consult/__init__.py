"""Teleconsultation workflow: ServiceRequest -> Task -> DiagnosticReport, deadlines and escalation.

See ``docs/consult.md``. Nothing here has import-time side effects; the domain plugs into the app
through :mod:`phix.consult.integration`.
"""
