"""The download stage's code: fetch the archive at data.url (fetch.py) and check and parse it (archive.py)."""
