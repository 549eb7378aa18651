"""One poll, as stages a reader opens in order.

1. ``fetch``            new mail of one folder: UIDs after the last recorded, bodies in bounded batches
2. ``record``           decide and record one message (outcome, files, findings) and note the reply it is owed
3. ``reply``            render each owed reply and queue it; a reply that does not render waits for the next poll
   (then ``intake.changes``: the 状态变更通知 owed to districts whose projects another district's mail changed)
4. ``resolve``          replies a crash left ``sending`` or an SMTP answer lost after DATA left ``unknown``:
                        sent if the Sent folder has them, else queued again
5. ``send``             send the queued replies round-robin by district, within the daily limit per address:
                        each looked up in the Sent folder first, sent (SMTP), copied there, stamped
6. ``mailbox_actions``  flag (and move) every recorded message of a folder
7. ``outputs``          ledger.xlsx and digest.html from the store, the daily digest mail
8. ``alerts``           one mail to staff when something needs a person

``cycle`` runs them: each step is isolated (its failure is logged, recorded with since-when, retried at the
next poll) so one failing step never stops the others. ``context`` holds what every stage is given.
"""
