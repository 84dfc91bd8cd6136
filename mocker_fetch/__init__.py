"""mocker-fetch: pull an image from a registry into an OCI image layout"""
