"""What both front ends (CSL and the Python API) check and collect, written once.

Each rule raises a `ValueError` with one text; the CSL front end re-raises it as a `CslError` at
the source position, the Python API as a `ProgramError`."""
