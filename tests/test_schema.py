import pytest
from drf_spectacular.validation import validate_schema


@pytest.mark.django_db
def test_the_openapi_document_is_valid_openapi_3(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    validate_schema(document)
    assert "/api/v1/auth/token/" in document["paths"]
    assert "/api/v1/me/" in document["paths"]


@pytest.mark.django_db
def test_the_api_docs_page_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"cdn." not in response.content
