from .operation_status import HubSpotOperationStatusTrigger

__all__ = ["HubSpotOperationStatusTrigger"]
