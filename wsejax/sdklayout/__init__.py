"""The SDK's Python layout API (`SdkLayout`, spec 13.4), built on the CSL front end: a layout
is written out as a CSL layout file and compiled by `wsejax.csl.compile_csl`
(`wsejax.sdklayout.build`). See `wsejax.sdklayout.api` for the classes and what wsejax decides
where the SDK's documentation is silent."""

from wsejax.sdklayout.api import (
    CodeRegion,
    Color,
    Edge,
    EdgeRouting,
    Port,
    Route,
    RoutingPosition,
    SdkLayout,
    Stream,
    get_edge_routing,
)
from wsejax.sdklayout.geometry import IntRectangle, IntVector

__all__ = ["CodeRegion", "Color", "Edge", "EdgeRouting", "IntRectangle", "IntVector", "Port",
           "Route", "RoutingPosition", "SdkLayout", "Stream", "get_edge_routing"]
