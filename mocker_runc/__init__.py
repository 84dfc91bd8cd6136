"""mocker-runc: run an OCI runtime bundle in namespaces and cgroups, like runc"""
