"""The download stage's code: fetch the archive at data.url, check it and parse it."""
