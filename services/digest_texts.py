"""The words of an email digest and its unsubscribe page, in the languages the exchange's
UI speaks. Dates are written as ISO 8601 (2026-12-01) in every language."""

from __future__ import annotations

from dataclasses import dataclass

from cityexchange.services.models import DigestFrequency


@dataclass(frozen=True, slots=True)
class Texts:
    subject: dict[DigestFrequency, str]  # with {n}, the number of updates (no plural forms)
    intro: str  # with {date}
    updates: str  # with {n}
    more: str  # with {n}
    open: str
    why: dict[DigestFrequency, str]
    unsubscribe: str
    confirm: str  # the unsubscribe page's question
    done: str
    gone: str  # a link that unsubscribes no one (any more)
    ask_subject: str  # the message that asks the address's owner to confirm
    ask: dict[DigestFrequency, str]
    ask_ignore: str  # what to do if one did not ask
    ask_page: str  # the confirmation page's question
    ask_button: str
    confirmed: str


D, W = DigestFrequency.DAILY, DigestFrequency.WEEKLY

TEXTS: dict[str, Texts] = {
    "en": Texts(
        subject={D: "Your daily digest ({n})", W: "Your weekly digest ({n})"},
        intro="Since {date}, in what you follow and your saved filters:",
        updates="Updates: {n}",
        more="And {n} more: see your feed in the app.",
        open="Open",
        why={
            D: "You receive this because you asked for a daily digest from Peer City Exchange.",
            W: "You receive this because you asked for a weekly digest from Peer City Exchange.",
        },
        unsubscribe="Unsubscribe",
        confirm="Stop receiving these digests?",
        done="You will receive no more digests.",
        gone="This link is no longer valid: you are not subscribed.",
        ask_subject="Confirm your Peer City Exchange digest",
        ask={
            D: "Confirm that you want a daily digest of Peer City Exchange at this address.",
            W: "Confirm that you want a weekly digest of Peer City Exchange at this address.",
        },
        ask_ignore="If you did not ask for it, ignore this message: nothing will be sent.",
        ask_page="Send the digests to this address?",
        ask_button="Confirm",
        confirmed="Confirmed: your digests will come to this address.",
    ),
    "es": Texts(
        subject={D: "Tu resumen diario ({n})", W: "Tu resumen semanal ({n})"},
        intro="Desde el {date}, en lo que sigues y en tus filtros guardados:",
        updates="Novedades: {n}",
        more="Y {n} más: consulta tu feed en la aplicación.",
        open="Abrir",
        why={
            D: "Recibes este correo porque pediste un resumen diario de Peer City Exchange.",
            W: "Recibes este correo porque pediste un resumen semanal de Peer City Exchange.",
        },
        unsubscribe="Cancelar la suscripción",
        confirm="¿Dejar de recibir estos resúmenes?",
        done="Ya no recibirás más resúmenes.",
        gone="Este enlace ya no es válido: no estás suscrito.",
        ask_subject="Confirma tu resumen de Peer City Exchange",
        ask={
            D: "Confirma que quieres recibir un resumen diario de Peer City Exchange en esta "
            "dirección.",
            W: "Confirma que quieres recibir un resumen semanal de Peer City Exchange en esta "
            "dirección.",
        },
        ask_ignore="Si no lo pediste, ignora este mensaje: no se enviará nada.",
        ask_page="¿Enviar los resúmenes a esta dirección?",
        ask_button="Confirmar",
        confirmed="Confirmado: tus resúmenes llegarán a esta dirección.",
    ),
    "nl": Texts(
        subject={
            D: "Je dagelijkse overzicht ({n})",
            W: "Je wekelijkse overzicht ({n})",
        },
        intro="Sinds {date}, in wat je volgt en je opgeslagen filters:",
        updates="Updates: {n}",
        more="En nog {n}: bekijk je feed in de app.",
        open="Openen",
        why={
            D: "Je ontvangt dit omdat je om een dagelijks overzicht van Peer City Exchange hebt "
            "gevraagd.",
            W: "Je ontvangt dit omdat je om een wekelijks overzicht van Peer City Exchange hebt "
            "gevraagd.",
        },
        unsubscribe="Afmelden",
        confirm="Geen overzichten meer ontvangen?",
        done="Je ontvangt geen overzichten meer.",
        gone="Deze link is niet meer geldig: je bent niet aangemeld.",
        ask_subject="Bevestig je overzicht van Peer City Exchange",
        ask={
            D: "Bevestig dat je een dagelijks overzicht van Peer City Exchange op dit adres wilt "
            "ontvangen.",
            W: "Bevestig dat je een wekelijks overzicht van Peer City Exchange op dit adres wilt "
            "ontvangen.",
        },
        ask_ignore="Heb je hier niet om gevraagd, negeer dan dit bericht: er wordt niets "
        "verstuurd.",
        ask_page="De overzichten naar dit adres sturen?",
        ask_button="Bevestigen",
        confirmed="Bevestigd: je overzichten komen naar dit adres.",
    ),
    "pt": Texts(
        subject={D: "O seu resumo diário ({n})", W: "O seu resumo semanal ({n})"},
        intro="Desde {date}, no que segue e nos seus filtros guardados:",
        updates="Novidades: {n}",
        more="E mais {n}: veja o seu feed na aplicação.",
        open="Abrir",
        why={
            D: "Recebe este e-mail porque pediu um resumo diário do Peer City Exchange.",
            W: "Recebe este e-mail porque pediu um resumo semanal do Peer City Exchange.",
        },
        unsubscribe="Cancelar a subscrição",
        confirm="Deixar de receber estes resumos?",
        done="Não receberá mais resumos.",
        gone="Esta ligação já não é válida: não tem subscrição.",
        ask_subject="Confirme o seu resumo do Peer City Exchange",
        ask={
            D: "Confirme que quer receber um resumo diário do Peer City Exchange neste endereço.",
            W: "Confirme que quer receber um resumo semanal do Peer City Exchange neste endereço.",
        },
        ask_ignore="Se não o pediu, ignore esta mensagem: nada será enviado.",
        ask_page="Enviar os resumos para este endereço?",
        ask_button="Confirmar",
        confirmed="Confirmado: os seus resumos chegarão a este endereço.",
    ),
    "fr": Texts(
        subject={
            D: "Votre résumé quotidien ({n})",
            W: "Votre résumé hebdomadaire ({n})",
        },
        intro="Depuis le {date}, dans ce que vous suivez et vos filtres enregistrés :",
        updates="Nouveautés : {n}",
        more="Et {n} de plus : consultez votre fil dans l'application.",
        open="Ouvrir",
        why={
            D: "Vous recevez ce message parce que vous avez demandé un résumé quotidien de "
            "Peer City Exchange.",
            W: "Vous recevez ce message parce que vous avez demandé un résumé hebdomadaire de "
            "Peer City Exchange.",
        },
        unsubscribe="Se désabonner",
        confirm="Ne plus recevoir ces résumés ?",
        done="Vous ne recevrez plus de résumés.",
        gone="Ce lien n'est plus valide : vous n'êtes pas abonné.",
        ask_subject="Confirmez votre résumé Peer City Exchange",
        ask={
            D: "Confirmez que vous souhaitez recevoir un résumé quotidien de Peer City Exchange à "
            "cette adresse.",
            W: "Confirmez que vous souhaitez recevoir un résumé hebdomadaire de Peer City "
            "Exchange à cette adresse.",
        },
        ask_ignore="Si vous ne l'avez pas demandé, ignorez ce message : rien ne sera envoyé.",
        ask_page="Envoyer les résumés à cette adresse ?",
        ask_button="Confirmer",
        confirmed="Confirmé : vos résumés arriveront à cette adresse.",
    ),
}
LANGUAGES = tuple(TEXTS)
