from .operation_status import HubSpotOperationStatusSensor

__all__ = ["HubSpotOperationStatusSensor"]
