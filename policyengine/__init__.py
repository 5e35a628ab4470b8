"""policyengine: declarative governance for the ML model lifecycle."""

__version__ = "0.1.0"
