"""The segment pages: the directory and a segment's detail (pages), the visual builder,
overlap, segment settings, and the customer profile's segments panel."""
