"""mocker-bundle: turn an image from an OCI image layout into an OCI runtime bundle"""
