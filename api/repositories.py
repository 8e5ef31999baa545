import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.permissions import ReadersAndWriters
from core.roles import Role
from idempotency.decorators import idempotent
from tasks import selectors, services
from tasks.evidence.sources import validate_source_url
from tasks.models import Repository

_FULL_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class RepositoryOutput(serializers.ModelSerializer):
    class Meta:
        model = Repository
        fields = [
            "id",
            "full_name",
            "url",
            "default_branch",
            "language",
            "license",
            "source_url",
            "active",
        ]


class RepositoryInput(serializers.Serializer):
    full_name = serializers.CharField(max_length=200)
    url = serializers.URLField(max_length=500)
    default_branch = serializers.CharField(max_length=200, default="main")
    language = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    license = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    source_url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="where evidence jobs clone it from: a git URL, file:// or an absolute path",
    )

    def validate_source_url(self, value: str) -> str:
        try:
            return validate_source_url(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_full_name(self, value: str) -> str:
        if not _FULL_NAME.match(value):
            raise serializers.ValidationError("Use the form owner/name.")
        if Repository.objects.filter(full_name__iexact=value).exists():
            raise serializers.ValidationError("This repository is already in the catalogue.")
        return value


class RepositoryListCreate(ReadersAndWriters, generics.ListAPIView):
    serializer_class = RepositoryOutput
    write_roles = (Role.LEAD,)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        search = self.request.query_params.get("search")
        if search and "\x00" in search:  # PostgreSQL refuses NUL in text: a 400, not a 500
            raise serializers.ValidationError({"search": ["Null characters are not allowed."]})
        return selectors.repositories_search(search=search)

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="part of owner/name, or a language")
        ]
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=RepositoryInput, responses={201: RepositoryOutput})
    @idempotent
    def post(self, request: Request) -> Response:
        data = RepositoryInput(data=request.data)
        data.is_valid(raise_exception=True)
        repository = services.repository_create(**data.validated_data)
        return Response(RepositoryOutput(repository).data, status=201)


class RepositoryDetail(generics.RetrieveAPIView):
    serializer_class = RepositoryOutput
    queryset = Repository.objects.all()
