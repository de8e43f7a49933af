"""The segment pages (HTML + htmx partials): the directory, a segment's detail, its actions,
the visual builder, overlap, segment settings, and what the pages share (common). Thin views
(house rule 3): parse, call one service or selector with `request.membership` as the actor,
render; members' personal data is masked for members without `customers.view_pii`."""
