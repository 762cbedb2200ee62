"""Who holds budget and the rules: organizations, teams, members, pools, periods, policies.

Not built yet (issue 3); every movement of money here will be a ledger transfer.
"""
