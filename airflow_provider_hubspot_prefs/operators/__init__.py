from .export import HubSpotExportSubscriptionStatusesOperator
from .status import HubSpotSetSubscriptionStatusOperator
from .sync import HubSpotSyncSubscriptionStatusesOperator
from .unsubscribe import HubSpotBatchUnsubscribeAllOperator, HubSpotUnsubscribeAllOperator

__all__ = [
    "HubSpotBatchUnsubscribeAllOperator",
    "HubSpotExportSubscriptionStatusesOperator",
    "HubSpotSetSubscriptionStatusOperator",
    "HubSpotSyncSubscriptionStatusesOperator",
    "HubSpotUnsubscribeAllOperator",
]
