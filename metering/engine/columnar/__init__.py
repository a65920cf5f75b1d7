"""The embedded engine's answers to the Events interface, computed on EventFrame columns."""
