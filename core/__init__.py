"""The shared base every app may import: transitions, context, errors, roles, settings helpers.

It imports no app of the project.
"""
