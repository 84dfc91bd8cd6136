"""The annotations mocker-bundle writes into config.json for mocker-net.

The mocker-net contract (HELPERS.md): what the network hooks read from the
runtime state. The network one also marks a bundle as mocker-bundle's own
(remove.py refuses to delete a directory without it).
"""

NETWORK_ANNOTATION = "org.mocker.network"
PORTS_ANNOTATION = "org.mocker.ports"
HOSTNAME_ANNOTATION = "org.mocker.hostname"
