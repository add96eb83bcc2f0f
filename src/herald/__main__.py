from herald.cli import entry

entry()
