// The report's stylesheet: readable on screen, sensible on paper (A4, colours kept, figures
// not split across pages), no web fonts.

enum ReportStyle {
    static let css = """

        :root { color-scheme: light; }
        body { font-family: 'Liberation Sans', Arial, Helvetica, sans-serif; color: #222; background: #fff;
               margin: 0 auto; padding: 16px 24px 32px; max-width: 1160px; line-height: 1.4; font-size: 14px; }
        h1 { font-size: 24px; margin: 4px 0 8px; }
        h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
        dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 4px 24px; margin: 0; }
        dl.facts div { display: flex; gap: 8px; }
        dl.facts dt { color: #666; min-width: 90px; }
        dl.facts dd { margin: 0; font-weight: bold; overflow-wrap: anywhere; }
        table { border-collapse: collapse; width: 100%; margin: 8px 0; }
        th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e5e5e5; vertical-align: top; }
        th { background: #f3f3f3; font-weight: bold; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        td.text { overflow-wrap: break-word; }
        table.views td:first-child { overflow-wrap: anywhere; min-width: 4.5em; }
        table.views td:nth-child(5) { min-width: 7.5em; }
        .yes, .no { display: inline-block; padding: 0 8px; border-radius: 9px; font-weight: bold; }
        .yes { background: #d7f0e4; color: #00603f; }
        .no { background: #f8d3d3; color: #8a0012; }
        .keyframes { display: flex; flex-wrap: wrap; gap: 16px; margin-top: 12px; }
        .keyframes figure { margin: 0; }
        .keyframes img { width: 224px; height: auto; background: #000; display: block; border: 1px solid #ccc; }
        .keyframes figcaption { font-size: 13px; max-width: 224px; overflow-wrap: anywhere; }
        .note { color: #666; font-style: italic; }
        figure { margin: 8px 0; }
        figcaption, p.caption { color: #555; font-size: 13px; margin: 4px 0; }
        svg.plot { display: block; max-width: 100%; height: auto; background: #fff; }
        .pair { display: flex; flex-wrap: wrap; gap: 20px; }
        .pair svg.plot { flex: 1 1 460px; max-width: 540px; }
        p.summary { margin: 4px 0; }
        footer { margin-top: 32px; color: #777; font-size: 12px; border-top: 1px solid #ddd; padding-top: 8px; }
        @media print {
            @page { size: A4; margin: 12mm; }
            body { padding: 0; max-width: none; font-size: 10pt; }
            * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
            h2 { break-after: avoid; }
            figure, .pair, tr, .keyframes figure { break-inside: avoid; }
            #timeline, #force, #confidence, #path { break-inside: avoid; }
            .pair svg.plot { flex: 1 1 300px; }
            .keyframes img { width: 160px; }
            .keyframes figcaption { max-width: 160px; }
        }

        """
}
