"""The 30 SynthDerm conditions: visual signature (what the renderer draws) and wording (queries, answers).

Signatures are simplified caricatures chosen to be mutually distinct, not clinical descriptions.
`size` is the lesion radius as a fraction of the image half-width; `scale` the amount of flaking;
`confusers` the conditions wrong answers and wrong self-diagnoses are drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

MORPHOLOGIES = ("macule", "patch", "papule", "plaque", "nodule", "vesicle", "bulla", "pustule", "ring", "target", "wheal")
DISTRIBUTIONS = ("single", "pair", "few", "scattered", "clustered", "band", "widespread")
TEXTURES = ("smooth", "rough", "waxy", "crust", "glossy", "variegated", "dimpled", "veins", "greasy")


@dataclass(frozen=True)
class Condition:
    """One condition: names, visual signature and the words used about it."""

    name: str
    aliases: tuple[str, ...]
    colour: tuple[int, int, int]
    morphology: str
    distribution: str
    size: float
    scale: float
    texture: str
    sites: tuple[str, ...]
    lay: str
    itch: float
    days: tuple[int, int]
    advice: str
    confusers: tuple[str, ...]
    aspect: float = 1.0
    irregular: float = 0.08

    def signature(self) -> tuple:
        """The visual signature as a hashable tuple (unique per condition)."""
        return (self.colour, self.morphology, self.distribution, round(self.size, 2), self.scale > 0, self.texture)


def _c(name, aliases, colour, morphology, distribution, size, scale, texture, sites, lay, itch, days, advice, confusers,
       aspect=1.0, irregular=0.08) -> Condition:
    """Compact constructor for the table below."""
    return Condition(name, tuple(aliases), tuple(colour), morphology, distribution, size, scale, texture, tuple(sites),
                     lay, itch, tuple(days), advice, tuple(confusers), aspect, irregular)


CONDITIONS: tuple[Condition, ...] = (
    _c("psoriasis", ["plaque psoriasis"], (205, 80, 75), "plaque", "few", 0.16, 0.8, "smooth", ["arm", "leg", "back", "scalp"],
       "red patches covered with silvery flakes", 0.5, (60, 1500), "Use a topical corticosteroid with a vitamin D analogue; phototherapy if it is widespread.",
       ["atopic dermatitis", "seborrheic dermatitis", "tinea corporis"], 1.3, 0.12),
    _c("atopic dermatitis", ["eczema", "atopic eczema"], (200, 105, 100), "patch", "few", 0.28, 0.25, "rough", ["arm", "hand", "neck", "face"],
       "dry, rough, itchy red skin", 0.95, (14, 700), "Moisturize generously and apply a mild topical steroid to flares.",
       ["contact dermatitis", "psoriasis", "scabies"], 1.4, 0.2),
    _c("tinea corporis", ["ringworm", "fungal infection"], (190, 85, 70), "ring", "few", 0.22, 0.4, "smooth", ["chest", "abdomen", "arm", "leg"],
       "a red ring-shaped rash that keeps spreading", 0.7, (10, 120), "Apply a topical antifungal such as terbinafine cream twice daily for two to four weeks.",
       ["pityriasis rosea", "atopic dermatitis", "erythema multiforme"]),
    _c("vitiligo", ["leukoderma"], (250, 242, 236), "macule", "few", 0.24, 0.0, "smooth", ["hand", "face", "arm"],
       "white patches with no colour", 0.05, (90, 2000), "Try a topical calcineurin inhibitor or steroid; narrowband UVB phototherapy helps.",
       ["tinea versicolor", "melasma"], 1.2, 0.18),
    _c("urticaria", ["hives"], (238, 150, 150), "wheal", "scattered", 0.14, 0.0, "smooth", ["chest", "abdomen", "arm", "leg"],
       "raised itchy welts that come and go", 0.95, (1, 40), "Take a non-sedating antihistamine daily and look for the trigger.",
       ["erythema multiforme", "contact dermatitis"], 1.3, 0.25),
    _c("herpes zoster", ["shingles"], (246, 236, 212), "vesicle", "band", 0.035, 0.0, "smooth", ["chest", "back", "abdomen"],
       "a painful band of blisters on one side", 0.2, (2, 14), "Start an oral antiviral such as valacyclovir as early as possible and control the pain.",
       ["herpes simplex", "contact dermatitis", "bullous pemphigoid"]),
    _c("herpes simplex", ["cold sore"], (244, 230, 205), "vesicle", "clustered", 0.042, 0.0, "smooth", ["face"],
       "a small cluster of blisters", 0.4, (2, 10), "Use acyclovir cream or an oral antiviral at the first tingle.",
       ["herpes zoster", "impetigo"]),
    _c("acne vulgaris", ["acne"], (212, 95, 90), "papule", "widespread", 0.035, 0.0, "smooth", ["face", "back", "chest"],
       "lots of red pimples", 0.1, (60, 1000), "Use benzoyl peroxide and a topical retinoid; see a doctor for oral treatment if severe.",
       ["folliculitis", "rosacea"]),
    _c("seborrheic keratosis", ["seborrheic wart"], (118, 84, 56), "plaque", "few", 0.09, 0.0, "waxy", ["back", "chest", "face"],
       "a brown, crusty, stuck-on bump", 0.15, (180, 3000), "It is benign; cryotherapy or curettage if it bothers you.",
       ["melanoma", "common wart", "melanocytic nevus"], 1.3, 0.1),
    _c("melanocytic nevus", ["mole", "nevus"], (105, 68, 46), "macule", "single", 0.07, 0.0, "smooth", ["back", "arm", "face"],
       "a dark brown spot", 0.0, (365, 5000), "It looks benign; keep an eye on changes in size, shape or colour.",
       ["melanoma", "seborrheic keratosis", "dermatofibroma"], 1.0, 0.04),
    _c("melanoma", ["malignant melanoma"], (55, 35, 32), "macule", "single", 0.14, 0.0, "variegated", ["back", "leg", "arm"],
       "a dark spot that is growing and changing colour", 0.1, (60, 720), "This needs an urgent excision biopsy by a dermatologist.",
       ["melanocytic nevus", "seborrheic keratosis", "basal cell carcinoma"], 1.2, 0.3),
    _c("basal cell carcinoma", ["BCC", "rodent ulcer"], (232, 172, 172), "nodule", "single", 0.17, 0.0, "veins", ["face"],
       "a shiny pink bump that bleeds sometimes", 0.05, (180, 1500), "Have it biopsied; surgical excision or Mohs surgery is curative.",
       ["molluscum contagiosum", "melanoma", "keloid"]),
    _c("pityriasis rosea", ["pityriasis rosea of Gibert"], (222, 140, 122), "plaque", "widespread", 0.075, 0.35, "smooth", ["chest", "back", "abdomen"],
       "oval pink scaly spots on the body", 0.5, (7, 60), "It clears by itself in six to eight weeks; an antihistamine helps the itch.",
       ["tinea corporis", "psoriasis", "tinea versicolor"], 1.7, 0.05),
    _c("contact dermatitis", ["allergic contact dermatitis"], (212, 88, 82), "patch", "band", 0.07, 0.0, "rough", ["hand", "arm", "face"],
       "an itchy red rash in streaks", 0.9, (2, 30), "Avoid the trigger and use a topical steroid for one to two weeks.",
       ["atopic dermatitis", "herpes zoster", "cellulitis"], 1.6, 0.15),
    _c("scabies", ["itch mite infestation"], (182, 68, 68), "papule", "clustered", 0.028, 0.0, "crust", ["hand", "abdomen", "foot"],
       "tiny very itchy bumps, worse at night", 0.98, (7, 90), "Apply permethrin 5% cream to the whole body and treat all household contacts.",
       ["atopic dermatitis", "folliculitis", "urticaria"]),
    _c("molluscum contagiosum", ["molluscum"], (236, 212, 196), "papule", "clustered", 0.04, 0.0, "dimpled", ["chest", "arm", "face"],
       "small pearly bumps with a dent in the middle", 0.2, (30, 365), "They go away by themselves; curettage or cryotherapy speeds it up.",
       ["common wart", "folliculitis", "basal cell carcinoma"]),
    _c("common wart", ["wart", "verruca vulgaris"], (170, 150, 128), "papule", "few", 0.09, 0.0, "rough", ["hand", "foot"],
       "a rough hard bump", 0.05, (60, 720), "Use salicylic acid daily or have cryotherapy.",
       ["molluscum contagiosum", "seborrheic keratosis"]),
    _c("impetigo", ["school sores"], (216, 162, 70), "plaque", "clustered", 0.07, 0.0, "crust", ["face"],
       "yellow crusty sores", 0.4, (3, 21), "Use mupirocin ointment; oral antibiotics if it spreads.",
       ["herpes simplex", "seborrheic dermatitis", "contact dermatitis"], 1.2, 0.2),
    _c("cellulitis", ["skin infection"], (214, 78, 68), "patch", "single", 0.5, 0.0, "glossy", ["leg", "foot", "arm"],
       "a red, hot, swollen area", 0.05, (1, 7), "Start oral antibiotics; go to urgent care if you have a fever.",
       ["contact dermatitis", "urticaria"], 1.4, 0.15),
    _c("lichen planus", ["lichen ruber planus"], (128, 70, 112), "papule", "clustered", 0.035, 0.15, "glossy", ["arm", "leg", "hand"],
       "purple flat itchy bumps", 0.8, (30, 720), "Use a potent topical steroid; oral options if widespread.",
       ["psoriasis", "atopic dermatitis", "scabies"]),
    _c("rosacea", ["acne rosacea"], (216, 102, 102), "patch", "pair", 0.3, 0.0, "veins", ["face"],
       "red cheeks that flush easily", 0.1, (90, 2000), "Use topical metronidazole or ivermectin and avoid heat, alcohol and spicy food.",
       ["acne vulgaris", "seborrheic dermatitis"], 1.3, 0.2),
    _c("tinea versicolor", ["pityriasis versicolor"], (226, 196, 170), "macule", "widespread", 0.08, 0.3, "smooth", ["chest", "back", "neck"],
       "light spots with fine flakes", 0.2, (30, 365), "Wash with ketoconazole shampoo or use an antifungal cream for two weeks.",
       ["vitiligo", "pityriasis rosea", "melasma"], 1.2, 0.15),
    _c("melasma", ["chloasma"], (148, 100, 70), "patch", "pair", 0.28, 0.0, "smooth", ["face"],
       "brown patches on both cheeks", 0.0, (90, 2000), "Use strict sun protection and a hydroquinone cream.",
       ["tinea versicolor", "seborrheic keratosis"], 1.4, 0.25),
    _c("bullous pemphigoid", ["pemphigoid"], (240, 226, 190), "bulla", "few", 0.14, 0.0, "smooth", ["leg", "arm", "abdomen"],
       "large tense blisters", 0.7, (7, 120), "See a dermatologist; potent topical steroids are the first treatment.",
       ["herpes zoster", "impetigo", "contact dermatitis"]),
    _c("keloid", ["keloid scar"], (186, 102, 98), "nodule", "single", 0.2, 0.0, "glossy", ["chest", "arm", "face"],
       "a raised shiny scar that keeps growing", 0.4, (180, 3000), "Intralesional steroid injections flatten it; avoid surgery alone.",
       ["dermatofibroma", "basal cell carcinoma"], 2.8, 0.1),
    _c("cherry angioma", ["cherry spot"], (198, 24, 40), "papule", "scattered", 0.042, 0.0, "glossy", ["chest", "abdomen", "back"],
       "small bright red dots", 0.0, (180, 5000), "They are harmless; laser removal if you want them gone.",
       ["melanocytic nevus", "folliculitis"]),
    _c("seborrheic dermatitis", ["dandruff"], (226, 150, 112), "patch", "few", 0.2, 0.6, "greasy", ["scalp", "face"],
       "greasy yellow flakes on red skin", 0.5, (30, 2000), "Use ketoconazole shampoo and a mild steroid for flares.",
       ["psoriasis", "atopic dermatitis", "rosacea"], 1.4, 0.2),
    _c("folliculitis", ["hair follicle infection"], (232, 212, 140), "pustule", "widespread", 0.025, 0.0, "smooth", ["leg", "back", "scalp"],
       "small pus bumps around the hairs", 0.4, (3, 60), "Wash with an antibacterial cleanser and use a topical antibiotic.",
       ["acne vulgaris", "scabies", "impetigo"]),
    _c("erythema multiforme", ["erythema multiforme minor"], (178, 60, 80), "target", "scattered", 0.1, 0.0, "smooth", ["hand", "arm", "leg"],
       "round spots that look like targets", 0.3, (3, 28), "Treat the trigger (often herpes) and use a topical steroid for symptoms.",
       ["urticaria", "tinea corporis"]),
    _c("dermatofibroma", ["fibrous histiocytoma"], (146, 96, 72), "nodule", "single", 0.11, 0.0, "smooth", ["leg", "arm"],
       "a firm brown bump", 0.1, (180, 3000), "It is benign and needs no treatment.",
       ["melanocytic nevus", "keloid", "common wart"]),
)

BY_NAME = {c.name: c for c in CONDITIONS}


def label_dictionary() -> dict[str, str]:
    """Lower-case name or alias -> canonical condition name (for rule-based label extraction)."""
    return {alias.lower(): c.name for c in CONDITIONS for alias in (c.name, *c.aliases)}
