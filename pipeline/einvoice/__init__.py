"""E-invoices: the EN 16931 XML a document carries (Factur-X / ZUGFeRD attachments, XRechnung and
Peppol XML files), read exactly instead of by the model, hardened against hostile files."""
