"""mocker-net: bridge networking, addresses, NAT and port forwards for containers"""
