"""学分银行 (credit bank): an append-only ledger of 学时 with policy as data.

Enable with ``LMS_PLUGINS=credit_bank``. Tables are prefixed ``credit_``; the migration
branch is ``credit_bank``. See docs/credit_bank.md.
"""

from plugins.credit_bank.plugin import CreditBankPlugin

plugin = CreditBankPlugin()
