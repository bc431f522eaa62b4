"""The words of a crisis alert email (services/crisis_alerts.py), in the languages the
exchange's UI speaks; a city gets the first of its languages found here, else English.
Taxonomy values (hazards) stay in English words, as the API names them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertTexts:
    subject: str  # {name}: the asking city; {title}
    asks: str  # {name}
    hazards: str
    open: str  # the link's words in the text part
    offer: str
    open_html: str  # the link's words in the HTML part
    offer_html: str  # what follows the link there
    why: str  # {city}, {why}
    follows: str  # {hazards}
    close_peer: str


TEXTS: dict[str, AlertTexts] = {
    "en": AlertTexts(
        subject="Active crisis in {name}: {title}",
        asks="{name} asks for help with an active crisis:",
        hazards="Hazards",
        open="Open it",
        offer="Offer a solution or a person who can help from its page (offerHelp).",
        open_html="Open it in Peer City Exchange",
        offer_html="to offer a solution or a person who can help.",
        why="You receive this as the CRO team contact of {city}, because {why}.",
        follows="your city follows {hazards}",
        close_peer="your city is a close peer of the asking city",
    ),
    "es": AlertTexts(
        subject="Crisis activa en {name}: {title}",
        asks="{name} pide ayuda ante una crisis activa:",
        hazards="Amenazas",
        open="Ábrala",
        offer="Ofrezca una solución o una persona que pueda ayudar desde su página (offerHelp).",
        open_html="Ábrala en Peer City Exchange",
        offer_html="para ofrecer una solución o una persona que pueda ayudar.",
        why="Recibe este mensaje como contacto del equipo CRO de {city}, porque {why}.",
        follows="su ciudad sigue {hazards}",
        close_peer="su ciudad es muy afín a la ciudad que pide ayuda",
    ),
    "nl": AlertTexts(
        subject="Acute crisis in {name}: {title}",
        asks="{name} vraagt om hulp bij een acute crisis:",
        hazards="Risico's",
        open="Openen",
        offer="Bied vanaf de pagina een oplossing of een persoon aan die kan helpen (offerHelp).",
        open_html="Open het in Peer City Exchange",
        offer_html="om een oplossing of een persoon aan te bieden die kan helpen.",
        why="U ontvangt dit als contactpersoon van het CRO-team van {city}, omdat {why}.",
        follows="uw stad {hazards} volgt",
        close_peer="uw stad sterk lijkt op de stad die om hulp vraagt",
    ),
    "pt": AlertTexts(
        subject="Crise ativa em {name}: {title}",
        asks="{name} pede ajuda perante uma crise ativa:",
        hazards="Ameaças",
        open="Abrir",
        offer="Ofereça uma solução ou uma pessoa que possa ajudar a partir da sua página "
        "(offerHelp).",
        open_html="Abra-o no Peer City Exchange",
        offer_html="para oferecer uma solução ou uma pessoa que possa ajudar.",
        why="Recebe esta mensagem como contacto da equipa CRO de {city}, porque {why}.",
        follows="a sua cidade segue {hazards}",
        close_peer="a sua cidade é muito semelhante à cidade que pede ajuda",
    ),
    "fr": AlertTexts(
        subject="Crise en cours à {name} : {title}",
        asks="{name} demande de l'aide face à une crise en cours :",
        hazards="Risques",
        open="L'ouvrir",
        offer="Proposez depuis sa page une solution ou une personne qui peut aider (offerHelp).",
        open_html="L'ouvrir dans Peer City Exchange",
        offer_html="pour proposer une solution ou une personne qui peut aider.",
        why="Vous recevez ce message comme contact de l'équipe CRO de {city}, car {why}.",
        follows="votre ville suit {hazards}",
        close_peer="votre ville est très proche de la ville qui demande de l'aide",
    ),
}


def texts_for(languages: tuple[str, ...]) -> tuple[str, AlertTexts]:
    """The first of `languages` (ISO 639-1, lower case) with texts, else English."""
    language = next((code for code in languages if code in TEXTS), "en")
    return language, TEXTS[language]
