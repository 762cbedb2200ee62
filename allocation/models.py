"""Moving budget: allocations, transfer requests and approvals, exemptions, planning.

Not built yet (issues 3 and 5).
"""
