from .status import HubSpotSetSubscriptionStatusOperator
from .unsubscribe import HubSpotBatchUnsubscribeAllOperator, HubSpotUnsubscribeAllOperator

__all__ = [
    "HubSpotBatchUnsubscribeAllOperator",
    "HubSpotSetSubscriptionStatusOperator",
    "HubSpotUnsubscribeAllOperator",
]
