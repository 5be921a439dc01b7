from .export import HubSpotExportSubscriptionStatusesOperator
from .status import HubSpotSetSubscriptionStatusOperator
from .unsubscribe import HubSpotBatchUnsubscribeAllOperator, HubSpotUnsubscribeAllOperator

__all__ = [
    "HubSpotBatchUnsubscribeAllOperator",
    "HubSpotExportSubscriptionStatusesOperator",
    "HubSpotSetSubscriptionStatusOperator",
    "HubSpotUnsubscribeAllOperator",
]
