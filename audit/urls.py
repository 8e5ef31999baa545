from django.urls import path

from audit import api

urlpatterns = [
    path("audit/events/", api.AuditEventList.as_view(), name="audit-event-list"),
    path("audit/events/export/", api.AuditEventExport.as_view(), name="audit-event-export"),
    path("audit/verify/", api.AuditVerify.as_view(), name="audit-verify"),
]
