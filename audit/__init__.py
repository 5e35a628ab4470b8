"""audit: a tamper-evident, signed, append-only log.

Imports nothing from policyengine: an auditor verifies a log with this
package and `cryptography` alone.
"""
