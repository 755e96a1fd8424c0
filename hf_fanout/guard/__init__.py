"""The guard: the layers that keep parallel agents from reaching outside their part."""
