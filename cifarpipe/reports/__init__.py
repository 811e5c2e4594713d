"""Pictures and tables for people, one module per stage that draws them.

DVC reruns a stage when a file it imports changes, so a restyled chart must live only in the import
closure of the stage that draws it: no module here is imported by the train stage (tests/test_reruns.py).
"""
