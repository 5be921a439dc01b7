"""What a task does, without Airflow: the client's calls and the ledger's record put together.

- ``batching``: send a batch's pending inputs in chunks (send windows, a fatal error stops the rest);
- ``classify``: HubSpot's answer to a write into one ledger row per input;
- ``consent_sync`` with ``sync_plan``: read what HubSpot holds, decide each desired row, write only
  what differs;
- ``verification``: read back what HubSpot holds until a batch's submitted rows are confirmed.

The layers read one way: operators, sensors -> triggers -> hooks -> runs -> ledger -> client.
"""
