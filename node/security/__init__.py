"""Access control: ACL users and selectors, AUTH, protected mode, rename-command.

``acl`` holds the users and the permission checks dispatch runs for clients
whose user is restricted; ``keyaccess`` says which keys a command reads and
writes (Redis 7's key-spec flags); ``protected`` is protected mode's decision;
``rename`` applies ``rename-command`` from the configuration.
"""
