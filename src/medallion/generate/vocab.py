"""Vocabularies: countries, names by culture, products, companies, CRM picklists.

Pools carry the text quirks real extracts have: accents (José, Müller, Zoë, Ångström), commas
and double quotes inside names, and a few values with a line break, so the CSV writer and every
reader downstream meet them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa

from medallion.generate import fmt

# code, weight, calling code, local currency (when among the 20 FX currencies), name culture
COUNTRIES: tuple[tuple[str, float, str, str | None, str], ...] = (
    ("US", 28, "1", "USD", "en"),
    ("GB", 7, "44", "GBP", "en"),
    ("CA", 4, "1", "CAD", "en"),
    ("AU", 3, "61", "AUD", "en"),
    ("IE", 1, "353", "EUR", "en"),
    ("SG", 1, "65", "SGD", "en"),
    ("ZA", 1, "27", "ZAR", "en"),
    ("DE", 7, "49", "EUR", "de"),
    ("AT", 1, "43", "EUR", "de"),
    ("CH", 2, "41", "CHF", "de"),
    ("FR", 5, "33", "EUR", "fr"),
    ("BE", 1, "32", "EUR", "fr"),
    ("ES", 4, "34", "EUR", "es"),
    ("MX", 3, "52", "MXN", "es"),
    ("AR", 1, "54", None, "es"),
    ("BR", 3, "55", "BRL", "pt"),
    ("PT", 1, "351", "EUR", "pt"),
    ("IT", 3, "39", "EUR", "it"),
    ("NL", 2, "31", "EUR", "nl"),
    ("SE", 2, "46", "SEK", "nordic"),
    ("NO", 1, "47", "NOK", "nordic"),
    ("DK", 1, "45", "DKK", "nordic"),
    ("FI", 1, "358", "EUR", "nordic"),
    ("PL", 2, "48", "PLN", "ce"),
    ("CZ", 1, "420", "CZK", "ce"),
    ("HU", 1, "36", "HUF", "ce"),
    ("JP", 3, "81", "JPY", "jp"),
    ("KR", 2, "82", "KRW", "kr"),
    ("CN", 2, "86", "CNY", "cn"),
    ("IN", 3, "91", "INR", "in"),
)
COUNTRY_CODES = [c[0] for c in COUNTRIES]
COUNTRY_WEIGHTS = np.array([c[1] for c in COUNTRIES], dtype=np.float64)

CURRENCIES = (
    "AUD",
    "BRL",
    "CAD",
    "CHF",
    "CNY",
    "CZK",
    "DKK",
    "EUR",
    "GBP",
    "HUF",
    "INR",
    "JPY",
    "KRW",
    "MXN",
    "NOK",
    "PLN",
    "SEK",
    "SGD",
    "USD",
    "ZAR",
)
USD = CURRENCIES.index("USD")
COUNTRY_CURRENCY = np.array(
    [CURRENCIES.index(c[3]) if c[3] else USD for c in COUNTRIES], dtype=np.int64
)
CULTURES = ("en", "de", "fr", "es", "pt", "it", "nl", "nordic", "ce", "jp", "kr", "cn", "in")
COUNTRY_CULTURE = np.array([CULTURES.index(c[4]) for c in COUNTRIES], dtype=np.int64)
COUNTRY_TLD = np.array(
    [
        {"US": "com", "GB": "co.uk", "AU": "com.au", "BR": "com.br", "JP": "co.jp"}.get(
            c[0], c[0].lower() if c[0] not in ("CA", "SG", "ZA", "IN") else "com"
        )
        for c in COUNTRIES
    ]
)

# A rare entry (weight 0.05 against 1 for the others) keeps quotes and commas realistic but few.
RARE = 0.05

FIRST_NAMES: dict[str, list[tuple[str, float]]] = {
    "en": [
        *[
            (n, 1.0)
            for n in [
                "James",
                "Mary",
                "John",
                "Patricia",
                "Robert",
                "Jennifer",
                "Michael",
                "Linda",
                "William",
                "Elizabeth",
                "David",
                "Barbara",
                "Richard",
                "Susan",
                "Joseph",
                "Jessica",
                "Thomas",
                "Sarah",
                "Charles",
                "Karen",
                "Emily",
                "Olivia",
                "Liam",
                "Noah",
                "Zoë",
                "Chloë",
                "Aoife",
                "Siobhán",
            ]
        ],
        ('Robert "Bob"', RARE),
        ('Katherine "Kate"', RARE),
    ],
    "de": [
        (n, 1.0)
        for n in [
            "Jürgen",
            "Günter",
            "Lukas",
            "Leon",
            "Maximilian",
            "Felix",
            "Paul",
            "Jonas",
            "Björn",
            "Anna",
            "Lena",
            "Sophie",
            "Marie",
            "Jörg",
            "Käthe",
            "Hannah",
            "Lea",
            "Mia",
            "Ursula",
            "Sabine",
            "Ömer",
            "Zoë",
        ]
    ],
    "fr": [
        (n, 1.0)
        for n in [
            "François",
            "Jérôme",
            "Hélène",
            "Chloé",
            "Amélie",
            "Léa",
            "Céline",
            "Benoît",
            "Gaëlle",
            "Noël",
            "Louis",
            "Hugo",
            "Jules",
            "Camille",
            "Manon",
            "Inès",
            "Théo",
            "Raphaël",
            "Élodie",
            "Maëlle",
        ]
    ],
    "es": [
        (n, 1.0)
        for n in [
            "José",
            "María",
            "Begoña",
            "Jesús",
            "Ángel",
            "Lucía",
            "Sofía",
            "Martín",
            "Mateo",
            "Valentina",
            "Camila",
            "Santiago",
            "Andrés",
            "Inés",
            "Raúl",
            "Íñigo",
            "Nuria",
            "Pilar",
            "Álvaro",
            "Ramón",
        ]
    ],
    "pt": [
        (n, 1.0)
        for n in [
            "João",
            "Conceição",
            "Gonçalo",
            "Inês",
            "Tomás",
            "Beatriz",
            "Lúcia",
            "Antônio",
            "Luís",
            "Mariana",
            "Rafael",
            "Fernanda",
            "Gabriel",
            "Larissa",
            "Sebastião",
            "Simão",
        ]
    ],
    "it": [
        (n, 1.0)
        for n in [
            "Niccolò",
            "Giulia",
            "Francesco",
            "Alessandro",
            "Chiara",
            "Lorenzo",
            "Sofia",
            "Matteo",
            "Martina",
            "Andrea",
            "Giovanni",
            "Federica",
            "Luca",
            "Gioele",
            "Ilaria",
        ]
    ],
    "nl": [
        (n, 1.0)
        for n in [
            "Daan",
            "Sem",
            "Lucas",
            "Julia",
            "Emma",
            "Tess",
            "Sanne",
            "Thijs",
            "Anouk",
            "Bram",
            "Fenna",
            "Joëlle",
        ]
    ],
    "nordic": [
        (n, 1.0)
        for n in [
            "Søren",
            "Åsa",
            "Björn",
            "Mikael",
            "Elin",
            "Sigrið",
            "Ingrid",
            "Lars",
            "Astrid",
            "Jørgen",
            "Maja",
            "Oskar",
            "Freja",
            "Mårten",
            "Päivi",
            "Eeva",
            "Ånund",
            "Kristín",
        ]
    ],
    "ce": [
        (n, 1.0)
        for n in [
            "Łukasz",
            "Żaneta",
            "Małgorzata",
            "Paweł",
            "Tomáš",
            "Jiří",
            "Zuzana",
            "Kateřina",
            "Gergő",
            "Krisztián",
            "Réka",
            "Ákos",
            "Zsófia",
            "Michał",
            "Agnieszka",
            "Ondřej",
        ]
    ],
    "jp": [
        (n, 1.0)
        for n in [
            "Haruto",
            "Yuto",
            "Sota",
            "Yui",
            "Aoi",
            "Hina",
            "Ren",
            "Sakura",
            "Kenji",
            "Yūko",
            "Takumi",
            "Rin",
            "Shōta",
        ]
    ],
    "kr": [
        (n, 1.0)
        for n in [
            "Min-jun",
            "Seo-yeon",
            "Ji-ho",
            "Ha-eun",
            "Do-yun",
            "Ji-woo",
            "Seo-jun",
            "Su-bin",
            "Ye-jin",
        ]
    ],
    "cn": [
        (n, 1.0)
        for n in [
            "Wei",
            "Fang",
            "Jing",
            "Lei",
            "Min",
            "Yan",
            "Jun",
            "Hui",
            "Xin",
            "Yu",
            "Ming",
            "Li",
            "Na",
        ]
    ],
    "in": [
        (n, 1.0)
        for n in [
            "Aarav",
            "Vivaan",
            "Aditya",
            "Ananya",
            "Diya",
            "Priya",
            "Rohan",
            "Ishaan",
            "Kavya",
            "Arjun",
            "Saanvi",
        ]
    ],
}

LAST_NAMES: dict[str, list[tuple[str, float]]] = {
    "en": [
        *[
            (n, 1.0)
            for n in [
                "Smith",
                "Johnson",
                "Williams",
                "Brown",
                "Jones",
                "Miller",
                "Davis",
                "Wilson",
                "Taylor",
                "Anderson",
                "Thomas",
                "Moore",
                "Martin",
                "Jackson",
                "Thompson",
                "White",
                "Harris",
                "Clark",
                "Lewis",
                "Walker",
                "Hall",
                "O'Brien",
                "O'Connor",
                "McDonald",
            ]
        ],
        ("Smith, Jr.", RARE),
        ("Walker, III", RARE),
    ],
    "de": [
        (n, 1.0)
        for n in [
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Bauer",
            "Richter",
            "Klein",
            "Wolf",
            "Schröder",
            "Neumann",
            "Größe",
            "Köhler",
        ]
    ],
    "fr": [
        (n, 1.0)
        for n in [
            "Martin",
            "Bernard",
            "Dubois",
            "Thomas",
            "Robert",
            "Richard",
            "Petit",
            "Durand",
            "Leroy",
            "Moreau",
            "Lefèvre",
            "Girard",
            "Bonnet",
            "Dupont",
            "Lambert",
            "Fontaine",
            "Rousseau",
            "Mercier",
            "Gérard",
            "Chevalier",
        ]
    ],
    "es": [
        (n, 1.0)
        for n in [
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Martín",
            "Jiménez",
            "Ruiz",
            "Hernández",
            "Díaz",
            "Moreno",
            "Muñoz",
            "Álvarez",
            "Romero",
            "Núñez",
            "Peña",
        ]
    ],
    "pt": [
        (n, 1.0)
        for n in [
            "Silva",
            "Santos",
            "Oliveira",
            "Souza",
            "Rodrigues",
            "Ferreira",
            "Alves",
            "Pereira",
            "Lima",
            "Gomes",
            "Conceição",
            "Araújo",
            "Ribeiro",
            "Simões",
            "Magalhães",
        ]
    ],
    "it": [
        (n, 1.0)
        for n in [
            "Rossi",
            "Russo",
            "Ferrari",
            "Esposito",
            "Bianchi",
            "Romano",
            "Colombo",
            "Ricci",
            "Marino",
            "Greco",
            "Bruno",
            "Gallo",
            "Conti",
            "De",
            "Luca",
            "Mancini",
            "Costa",
        ]
    ],
    "nl": [
        *[
            (n, 1.0)
            for n in ["Jansen", "Visser", "Smit", "Meijer", "Bos", "Mulder", "Dekker", "Brouwer"]
        ],
        ("de Jong", 1.0),
        ("van Dijk", 1.0),
        ("de Vries", 1.0),
        ("van den Berg", 1.0),
    ],
    "nordic": [
        (n, 1.0)
        for n in [
            "Ångström",
            "Johansson",
            "Andersson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsson",
            "Jørgensen",
            "Hansen",
            "Sørensen",
            "Virtanen",
            "Mäkinen",
            "Løkke",
            "Björk",
            "Lindqvist",
            "Dahl",
        ]
    ],
    "ce": [
        (n, 1.0)
        for n in [
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Dvořák",
            "Novák",
            "Svoboda",
            "Černý",
            "Nagy",
            "Kovács",
            "Tóth",
            "Szabó",
            "Horváth",
            "Lewandowski",
            "Procházková",
        ]
    ],
    "jp": [
        (n, 1.0)
        for n in [
            "Satō",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Watanabe",
            "Itō",
            "Yamamoto",
            "Nakamura",
            "Kobayashi",
            "Katō",
        ]
    ],
    "kr": [
        (n, 1.0)
        for n in ["Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim"]
    ],
    "cn": [
        (n, 1.0)
        for n in [
            "Wang",
            "Li",
            "Zhang",
            "Liu",
            "Chen",
            "Yang",
            "Huang",
            "Zhao",
            "Wu",
            "Zhou",
            "Xu",
            "Sun",
        ]
    ],
    "in": [
        (n, 1.0)
        for n in [
            "Sharma",
            "Verma",
            "Patel",
            "Gupta",
            "Singh",
            "Kumar",
            "Reddy",
            "Iyer",
            "Nair",
            "Mehta",
            "Chopra",
            "Das",
        ]
    ],
}

EMAIL_DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
    "web.de",
    "orange.fr",
    "libero.it",
    "mail.com",
    "fastmail.com",
)

SEGMENTS = ("consumer", "small_business", "enterprise")
SEGMENT_WEIGHTS = np.array([0.70, 0.22, 0.08])

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "returned")
EVENT_TYPES = (
    "order_created",
    "order_paid",
    "order_shipped",
    "order_delivered",
    "order_cancelled",
    "order_returned",
)
# The status an event implies, index-aligned with EVENT_TYPES / ORDER_STATUSES.
EVENT_TYPE_WEIGHTS = np.array([0.30, 0.25, 0.20, 0.17, 0.05, 0.03])
CHANNELS = ("web", "ios", "android", "pos", "api")
CHANNEL_WEIGHTS = np.array([0.45, 0.22, 0.20, 0.08, 0.05])

# category -> subcategory -> (3-letter sku code, typical USD price, nouns)
CATALOG: dict[str, dict[str, tuple[str, float, tuple[str, ...]]]] = {
    "Electronics": {
        "Audio": ("AUD", 89.0, ("Headphones", "Earbuds", "Soundbar", "Speaker", "Turntable")),
        "Computers": ("CMP", 899.0, ("Laptop", "Monitor", "Keyboard", "Mouse", "Docking Station")),
        "Phones": ("PHN", 549.0, ("Smartphone", "Phone Case", "Charger", "Screen Protector")),
        "Cameras": ("CAM", 649.0, ("Mirrorless Camera", "Lens", "Tripod", "Action Camera")),
    },
    "Home & Kitchen": {
        "Cookware": ("CKW", 59.0, ("Skillet", "Dutch Oven", "Saucepan", "Wok", "Knife Set")),
        "Appliances": ("APL", 179.0, ("Espresso Machine", "Blender", "Air Fryer", "Kettle")),
        "Furniture": ("FRN", 329.0, ("Desk Chair", "Bookshelf", "Side Table", "Sofa Bed")),
        "Decor": ("DEC", 39.0, ("Table Lamp", "Wall Clock", "Vase", "Throw Blanket")),
    },
    "Sports & Outdoors": {
        "Camping": ("CMG", 119.0, ("Tent", "Sleeping Bag", "Camp Stove", "Headlamp")),
        "Fitness": ("FIT", 49.0, ("Yoga Mat", "Kettlebell", "Resistance Bands", "Jump Rope")),
        "Cycling": ("CYC", 249.0, ("Helmet", "Bike Light", "Saddle", "Bike Lock")),
    },
    "Clothing": {
        "Outerwear": ("OUT", 149.0, ("Rain Jacket", "Down Parka", "Fleece", "Windbreaker")),
        "Footwear": ("FTW", 99.0, ("Running Shoes", "Hiking Boots", "Sneakers", "Sandals")),
        "Accessories": ("ACC", 29.0, ("Beanie", "Scarf", "Belt", "Backpack", "Gloves")),
    },
    "Beauty": {
        "Skincare": ("SKN", 32.0, ("Moisturizer", "Serum", "Sunscreen", "Cleanser")),
        "Fragrance": ("FRG", 79.0, ("Eau de Parfum", "Eau de Toilette", "Body Mist")),
    },
    "Books": {
        "Fiction": ("FIC", 16.0, ("Novel", "Short Stories", "Poetry Collection")),
        "Non-Fiction": ("NFC", 22.0, ("Cookbook", "Field Guide", "Biography", "Atlas")),
    },
    "Toys & Games": {
        "Board Games": ("BRD", 35.0, ("Strategy Game", "Party Game", "Puzzle", "Chess Set")),
        "Building Sets": ("BLD", 59.0, ("Construction Kit", "Marble Run", "Robot Kit")),
    },
}
BRANDS = (
    "Nordlys",
    "Ångström Audio",
    "Brightline",
    "Café Lumière",
    "Kühn & Söhne",
    "Peak & Pine",
    "Señor Sol",
    "Zoë & Co",
    "Acme",
    "Blue Harbor",
    "Fjordhus",
    "Monte Verde",
    "Kiyomi",
    "Hanul",
    "Urban Fox",
    "Maison Doré",
)
PRODUCT_ADJECTIVES = (
    "Classic",
    "Pro",
    "Ultra",
    "Compact",
    "Essential",
    "Premium",
    "Eco",
    "Smart",
    "Vintage",
    "Wireless",
    "Deluxe",
    "Travel",
)
# Most names take no suffix; a few carry a comma, an inch mark or a line break.
PRODUCT_SUFFIXES: tuple[tuple[str, float], ...] = (
    ("", 40.0),
    (" Mk II", 3.0),
    (" (Refurbished)", 1.0),
    (", 2-Pack", 1.5),
    (", Set of 4", 1.0),
    (' 12"', 1.0),
    (' 15"', 0.8),
    ("\nLimited Edition", 0.1),
)

# Salesforce standard picklists.
ACCOUNT_TYPES = (
    "Customer - Direct",
    "Customer - Channel",
    "Prospect",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
STAGE_PROBABILITY = np.array([10, 10, 20, 50, 60, 70, 75, 90, 100, 0], dtype=np.int64)
CLOSED_WON = STAGES.index("Closed Won")
CLOSED_LOST = STAGES.index("Closed Lost")
STAGE_WEIGHTS = np.array([8, 7, 7, 6, 5, 4, 5, 4, 24, 30], dtype=np.float64)

COMPANY_WORDS = (
    "Acme",
    "Blue Harbor",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Soylent",
    "Vandelay",
    "Müller",
    "Schäfer",
    "Lefèvre",
    "Núñez",
    "Ångström",
    "Søndergaard",
    "Dvořák",
    "Kovács",
    "Nakamura",
    "Hanbit",
    "Tata",
    "Silverline",
    "Redwood",
    "Bluebird",
    "Evergreen",
    "Summit",
    "Pinnacle",
    "Horizon",
    "Crescent",
    "Atlas",
    "Orion",
    "Nimbus",
    "Quantum",
    "Sterling",
    "Aurora",
    "Cascade",
    "Meridian",
    "Lumen",
)
COMPANY_NOUNS = (
    "",
    " Logistics",
    " Systems",
    " Foods",
    " Partners",
    " Industries",
    " Solutions",
    " Media",
    " Energy",
    " Health",
    " Analytics",
    " Motors",
    " Textil",
    " Bau",
    " Consulting",
)
COMPANY_SUFFIXES: dict[str, tuple[str, ...]] = {
    "en": (" Inc.", ", Inc.", " LLC", " Ltd", " Corp.", " plc"),
    "de": (" GmbH", " AG", " GmbH & Co. KG"),
    "fr": (" SA", " SARL", " SAS"),
    "es": (" S.L.", " S.A.", ", S.A. de C.V."),
    "pt": (" Ltda.", " S.A."),
    "it": (" S.p.A.", " S.r.l."),
    "nl": (" B.V.", " N.V."),
    "nordic": (" AB", " AS", " A/S", " Oy"),
    "ce": (" Sp. z o.o.", " s.r.o.", " Kft."),
    "jp": (" K.K.", " Co., Ltd."),
    "kr": (" Co., Ltd.",),
    "cn": (" Co., Ltd.", " Group"),
    "in": (" Pvt. Ltd.", " Ltd"),
}
TITLES: tuple[tuple[str, float], ...] = (
    ("CEO", 1.0),
    ("CFO", 1.0),
    ("CTO", 1.0),
    ("VP, Sales", 1.5),
    ("VP, Operations", 1.0),
    ("Director of Procurement", 1.5),
    ("Head of IT", 1.5),
    ("Purchasing Manager", 2.0),
    ("Account Manager", 2.0),
    ("Office Manager", 1.5),
    ("Software Engineer", 1.5),
    ("Data Analyst", 1.0),
    ("Geschäftsführer", 0.8),
    ("Directeur Général", 0.8),
    ("Responsable Achats", 0.8),
    ('Manager, "Key Accounts"', 0.1),
)
DEAL_NAMES = (
    "New Business",
    "Renewal",
    "Expansion",
    "Upsell, Phase 2",
    "Pilot",
    "Services Add-on",
    "Multi-year Renewal",
    'Platform "Plus" Upgrade',
)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` (accents folded), for emails and domains."""
    special = {"ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "ß": "ss", "æ": "ae", "ð": "d", "þ": "th"}
    text = "".join(special.get(ch, ch) for ch in text)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


@dataclass(frozen=True)
class Pool:
    """A weighted vocabulary, grouped (by culture) for vectorised sampling."""

    raw: list[str]
    text: pa.Array  # the raw values as an Arrow array
    escaped: pa.Array  # CSV-escaped text, aligned with raw
    slug: pa.Array  # ASCII slug of the first word, aligned with raw
    offsets: np.ndarray  # group g occupies [offsets[g], offsets[g + 1])
    cumulative: list[np.ndarray]  # cumulative weights within each group

    @classmethod
    def build(cls, groups: list[list[tuple[str, float]]]) -> Pool:
        raw = [value for group in groups for value, _ in group]
        offsets = np.cumsum([0] + [len(group) for group in groups])
        cumulative = [np.cumsum([w for _, w in group]) for group in groups]
        slugs = [ascii_slug(value.split(",")[0].split('"')[0]) or "x" for value in raw]
        return cls(
            raw,
            pa.array(raw, pa.string()),
            fmt.escape_pool(raw),
            pa.array(slugs),
            offsets,
            cumulative,
        )

    def sample(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """One pool index per element of ``group``, drawn by weight within that group."""
        group = np.asarray(group, dtype=np.int64)
        out = np.empty(len(group), dtype=np.int64)
        draws = rng.random(len(group))
        for g, cumulative in enumerate(self.cumulative):
            mask = group == g
            if mask.any():
                local = np.searchsorted(cumulative, draws[mask] * cumulative[-1], side="right")
                out[mask] = self.offsets[g] + np.minimum(local, len(cumulative) - 1)
        return out


def _grouped(table: dict[str, list[tuple[str, float]]]) -> list[list[tuple[str, float]]]:
    return [table[culture] for culture in CULTURES]


SUBCATEGORIES = [
    (category, sub, code, price, nouns)
    for category, subs in CATALOG.items()
    for sub, (code, price, nouns) in subs.items()
]


@dataclass(frozen=True)
class Pools:
    first_name: Pool
    last_name: Pool
    company_suffix: Pool
    title: Pool
    product_suffix: Pool
    product_noun: Pool


@cache
def pools() -> Pools:
    """The weighted pools, built (and CSV-escaped) on first use."""
    return Pools(
        first_name=Pool.build(_grouped(FIRST_NAMES)),
        last_name=Pool.build(_grouped(LAST_NAMES)),
        company_suffix=Pool.build([[(s, 1.0) for s in COMPANY_SUFFIXES[c]] for c in CULTURES]),
        title=Pool.build([list(TITLES)]),
        product_suffix=Pool.build([list(PRODUCT_SUFFIXES)]),
        product_noun=Pool.build([[(noun, 1.0) for noun in s[4]] for s in SUBCATEGORIES]),
    )
